//! The canonical API, `/api/auth/*`: the multi-tenant platform's API, extended with every
//! capability of the other three.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tessera_core::api::{Problem, VerifyAnswer};
use tessera_core::lifetimes::ACCESS_TOKEN_SECS;
use tessera_core::model::SessionId;
use utoipa::ToSchema;

use super::extract::{ApiJson, Auth, Principal};
use super::problem::ApiError;
use super::tenant::{named_by_request, of_body};
use crate::clock::rfc3339;
use crate::services::sign_in::Attempt;
use crate::services::{Challenge, Client, Issued, SignedIn};
use crate::state::AppState;
use crate::store::User;

/// The canonical API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/verify", get(verify))
        .route("/api/auth/me", get(me))
        .route("/api/auth/sessions", get(sessions))
        .route("/api/auth/sessions/{id}", delete(end_session))
}

/// Sign-in request. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Registered email address.
    #[schema(format = Email)]
    pub email: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Tenant (company) slug; left out, the tenant the request names (`X-Tenant`,
    /// subdomain), else the default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Refresh request. `Debug` never prints the token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh.
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// A user as the canonical API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// User id (UUID).
    pub id: String,
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            name: user.name.clone(),
            role: user.role.clone(),
        }
    }
}

/// Tokens answered by sign-in and refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Access token (JWT, `typ: at+jwt`, EdDSA).
    pub access_token: String,
    /// Refresh token (opaque, single use: each refresh returns a new one).
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires (900).
    pub expires_in: u64,
    /// Seconds until the refresh family ends (604800 at sign-in; never extended).
    pub refresh_expires_in: i64,
    /// The signed-in user.
    pub user: UserBody,
}

impl From<Issued> for TokenResponse {
    fn from(issued: Issued) -> Self {
        Self {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_SECS,
            refresh_expires_in: issued.refresh_expires_at - issued.issued_at,
            user: UserBody::from(&issued.user),
        }
    }
}

/// The answer to a correct password: tokens, or the second factor's challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// Signed in.
    Tokens(TokenResponse),
    /// A second factor is due; its code was emailed.
    SecondFactor(MfaRequired),
    /// The tenant requires a second factor and the user has none yet.
    EnrolmentRequired(MfaEnrolmentRequired),
}

/// The tenant requires a second factor and the user has none: enrol an authenticator app with
/// this token (`POST /api/auth/mfa/totp/enroll`, then `…/confirm`), then sign in again.
#[derive(Serialize, ToSchema)]
pub struct MfaEnrolmentRequired {
    /// Always `true`.
    pub mfa_enrollment_required: bool,
    /// An access token good only for the two enrolment routes (claim `scope: "mfa_enroll"`);
    /// every other route, at the edge and the origin, answers 401 `restricted_token`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires (900); there is no refresh token.
    pub expires_in: u64,
}

/// A sign-in waiting for its second factor: answer with `POST /api/auth/mfa/verify`.
#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// Names this sign-in attempt (opaque, single use; never an access token).
    pub mfa_token: String,
    /// Methods the code may come from (`email`).
    pub methods: Vec<&'static str>,
    /// Seconds until the challenge ends (300).
    pub expires_in: u64,
}

impl From<Challenge> for MfaRequired {
    fn from(challenge: Challenge) -> Self {
        Self {
            mfa_required: true,
            mfa_token: challenge.mfa_token,
            methods: challenge.methods,
            expires_in: challenge.expires_in,
        }
    }
}

/// Sign in with tenant, email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in, or (`mfa_required: true`) a second factor is due and its code was emailed", body = LoginResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong tenant, email or password (one answer for all)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "X-Tenant names another tenant (`tenant_mismatch`), or the tenant requires a confirmed address (`email_not_verified`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 sign-ins a minute per IP and per account", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing queue full; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    let attempt = Attempt {
        named_tenant: named.as_ref(),
        tenant: &tenant,
        email: &body.email,
        password: body.password,
    };
    Ok(Json(
        match state.services.sign_in.login(attempt, &client).await? {
            SignedIn::Tokens(issued) => LoginResponse::Tokens((*issued).into()),
            SignedIn::SecondFactor(challenge) => LoginResponse::SecondFactor(challenge.into()),
            SignedIn::EnrolmentRequired { access_token } => {
                LoginResponse::EnrolmentRequired(MfaEnrolmentRequired {
                    mfa_enrollment_required: true,
                    access_token,
                    token_type: "Bearer",
                    expires_in: ACCESS_TOKEN_SECS,
                })
            }
        },
    ))
}

/// Exchange a refresh token for a new access token and a new refresh token.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenResponse),
        (status = 401, description = "Unknown, revoked, expired or reused refresh token (reuse revokes the family)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 refreshes a minute per IP", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let issued = state
        .services
        .refresh
        .refresh(body.refresh_token.expose_secret(), named.as_ref(), &client)
        .await?;
    Ok(Json(issued.into()))
}

/// End the caller's session: its refresh family is revoked and its access tokens are refused.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
) -> Result<StatusCode, ApiError> {
    state.services.sessions.sign_out(&auth, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a bearer token: an access token, or a service API token (`user.role: "service"`,
/// `service: {name, scopes}`, `expires_at` null unless it was given an expiry).
#[utoipa::path(get, path = "/api/auth/verify", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Valid", body = VerifyAnswer),
        (status = 401, description = "Invalid; the body has valid: false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    principal: Result<Principal, ApiError>,
) -> Result<Json<VerifyAnswer>, ApiError> {
    let principal = principal.map_err(ApiError::with_valid_false)?;
    Ok(Json(principal.verify_answer()))
}

/// A team the caller belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamBody {
    /// Team id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The caller's role (`owner`, `admin`, `member`).
    pub role: String,
}

/// A project of one of the caller's teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectBody {
    /// Project id.
    pub id: String,
    /// Its team.
    pub team_id: String,
    /// Name.
    pub name: String,
}

/// The caller's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    /// User id.
    pub id: String,
    /// Email.
    #[schema(format = Email)]
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Tenant.
    pub tenant: String,
    /// Account creation (RFC 3339).
    pub created_at: String,
    /// Whether the address is confirmed.
    pub email_verified: bool,
    /// Whether sign-in asks for an emailed code after the password.
    pub mfa_email: bool,
    /// The caller's teams (one, "<name>'s team", after the address is confirmed).
    pub teams: Vec<TeamBody>,
    /// The projects of those teams.
    pub projects: Vec<ProjectBody>,
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = Profile),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<Json<Profile>, ApiError> {
    let (teams, projects) = state.services.registration.teams(&auth).await?;
    let user = auth.user;
    Ok(Json(Profile {
        id: user.id.to_string(),
        email: user.email.to_string(),
        email_verified: user.email_verified(),
        mfa_email: user.mfa_email,
        name: user.name,
        role: user.role,
        tenant: auth.tenant.to_string(),
        created_at: rfc3339(user.created_at),
        teams: teams
            .into_iter()
            .map(|t| TeamBody {
                id: t.team_id,
                name: t.name,
                role: t.role,
            })
            .collect(),
        projects: projects
            .into_iter()
            .map(|p| ProjectBody {
                id: p.id,
                team_id: p.team_id,
                name: p.name,
            })
            .collect(),
    }))
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    /// Session id.
    pub id: String,
    /// Sign-in time (RFC 3339).
    pub created_at: String,
    /// Last refresh (RFC 3339).
    pub last_used_at: String,
    /// End of the refresh family (RFC 3339).
    pub expires_at: String,
    /// IP at sign-in.
    pub ip: String,
    /// User agent at sign-in.
    pub user_agent: String,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

/// The caller's active sessions.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active sessions, most recently used first", body = [SessionBody]),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<Json<Vec<SessionBody>>, ApiError> {
    let sessions = state.services.sessions.list(&auth).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionBody {
                current: s.id == auth.session_id,
                id: s.id.to_string(),
                created_at: rfc3339(s.created_at),
                last_used_at: rfc3339(s.last_used_at),
                expires_at: rfc3339(s.expires_at),
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

/// End one of the caller's sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active session of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end_session(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse(&id).map_err(|_| ApiError::not_found())?;
    state.services.sessions.end_own(&auth, &id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::{LoginRequest, RefreshRequest};

    #[test]
    fn request_bodies_never_print_their_secrets() {
        let login: LoginRequest = serde_json::from_str(
            r#"{"email":"ann@example.com","password":"hunter2 hunter2","tenant":"acme"}"#,
        )
        .unwrap();
        let refresh: RefreshRequest =
            serde_json::from_str(r#"{"refresh_token":"tsr_rt_acme_secretpart"}"#).unwrap();
        let shown = format!("{login:?} {refresh:?}");
        assert!(shown.contains("ann@example.com"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("secretpart"),
            "{shown}"
        );
    }
}
