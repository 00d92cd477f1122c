//! The canonical API's OpenID-client area, for admins of a tenant: register, list, show,
//! change and delete the clients of the tenant's provider (`/api/auth/clients`), as the
//! operator does with `tessera client`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use tessera_core::jwt::KeyAlgorithm;
use tessera_core::oidc::Grant;
use utoipa::ToSchema;

use super::extract::{ApiJson, Auth};
use super::problem::ApiError;
use crate::clock::rfc3339;
use crate::services::oidc_clients::ClientSettings;
use crate::services::Client;
use crate::state::AppState;
use crate::store::oidc::OidcClient;

/// The client routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/clients", get(list_clients).post(create_client))
        .route(
            "/api/auth/clients/{id}",
            get(show_client).put(update_client).delete(delete_client),
        )
}

/// The algorithm of a client's ID tokens.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every relying party accepts.
    #[default]
    RS256,
    /// Ed25519.
    EdDSA,
}

/// A redirect URI as the document describes it: `https`, or `http` on loopback, without a
/// fragment (the server's rule is the same, and exact matching follows from it).
#[derive(ToSchema)]
#[schema(
    pattern = "^(https://[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63}){0,4}\\.[a-z][a-z0-9-]{0,62}|http://(localhost|127\\.0\\.0\\.1))(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]{0,1500})?$"
)]
#[allow(dead_code)] // Only the schema is used: URIs travel as strings.
pub struct RedirectUri(String);

/// A client's settings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientSettingsBody {
    /// Shown on the sign-in page; 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// Redirect URIs, matched exactly.
    #[schema(value_type = Vec<RedirectUri>, min_items = 1, max_items = 20)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    #[serde(default)]
    #[schema(value_type = Vec<RedirectUri>, max_items = 20)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Grants; empty or absent: `authorization_code` and `refresh_token`.
    #[serde(default)]
    #[schema(max_items = 3)]
    pub grants: Vec<Grant>,
    /// The ID tokens' algorithm (default `RS256`).
    #[serde(default)]
    pub id_token_alg: IdTokenAlg,
}

/// A new client.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateClientRequest {
    /// Its settings.
    #[serde(flatten)]
    pub settings: ClientSettingsBody,
    /// A public client (a browser or mobile app): no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
}

/// The most redirect URIs of each kind a client registers.
const MAX_URIS: usize = 20;

impl ClientSettingsBody {
    fn into_settings(self) -> Result<ClientSettings, ApiError> {
        if self.redirect_uris.len() > MAX_URIS || self.post_logout_redirect_uris.len() > MAX_URIS {
            return Err(ApiError::bad_request(
                "invalid_client_settings",
                "A client registers at most 20 URIs of each kind.",
            ));
        }
        Ok(ClientSettings {
            name: self.name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grants: self.grants,
            id_token_alg: match self.id_token_alg {
                IdTokenAlg::RS256 => KeyAlgorithm::RS256,
                IdTokenAlg::EdDSA => KeyAlgorithm::EdDSA,
            },
        })
    }
}

/// A client as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientBody {
    /// The `client_id`.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// `confidential` (with a secret) or `public`.
    pub r#type: &'static str,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grants.
    pub grants: Vec<Grant>,
    /// `RS256` or `EdDSA`.
    pub id_token_alg: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<OidcClient> for ClientBody {
    fn from(client: OidcClient) -> Self {
        Self {
            r#type: if client.is_confidential() {
                "confidential"
            } else {
                "public"
            },
            client_id: client.id,
            name: client.name,
            redirect_uris: client.redirect_uris,
            post_logout_redirect_uris: client.post_logout_redirect_uris,
            grants: client.grants,
            id_token_alg: client.id_token_alg,
            created_at: rfc3339(client.created_at),
            updated_at: rfc3339(client.updated_at),
        }
    }
}

/// A registered client: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedClientBody {
    /// The secret (`tsr_cs_…`), for a confidential client. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Its record.
    #[serde(flatten)]
    pub client: ClientBody,
}

/// Register an OpenID client (admins of the tenant).
#[utoipa::path(post, path = "/api/auth/clients", tag = "clients", security(("bearer" = [])),
    request_body = CreateClientRequest,
    responses(
        (status = 201, description = "Registered; a confidential client's secret is in this answer only", body = CreatedClientBody),
        (status = 400, description = "A bad name or URI (`invalid_client_settings`), or a public client with client_credentials (`public_client_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_client(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<CreateClientRequest>,
) -> Result<(StatusCode, Json<CreatedClientBody>), ApiError> {
    let settings = body.settings.into_settings()?;
    let registered = state
        .services
        .oidc_clients
        .create_by(&auth, settings, body.public, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClientBody {
            client_secret: registered.secret,
            client: registered.client.into(),
        }),
    ))
}

/// The tenant's OpenID clients, oldest first (admins of the tenant).
#[utoipa::path(get, path = "/api/auth/clients", tag = "clients", security(("bearer" = [])),
    responses(
        (status = 200, description = "The clients (never their secrets)", body = [ClientBody]),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_clients(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<Json<Vec<ClientBody>>, ApiError> {
    let clients = state.services.oidc_clients.list_by(&auth).await?;
    Ok(Json(clients.into_iter().map(Into::into).collect()))
}

/// One OpenID client (admins of the tenant).
#[utoipa::path(get, path = "/api/auth/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientBody),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show_client(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<Json<ClientBody>, ApiError> {
    let client = state.services.oidc_clients.get_by(&auth, &id).await?;
    Ok(Json(client.into()))
}

/// Replace an OpenID client's settings (admins of the tenant).
#[utoipa::path(put, path = "/api/auth/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientSettingsBody,
    responses(
        (status = 200, description = "The client as changed", body = ClientBody),
        (status = 400, description = "A bad name or URI (`invalid_client_settings`), or a public client with client_credentials (`public_client_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_client(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ClientSettingsBody>,
) -> Result<Json<ClientBody>, ApiError> {
    let settings = body.into_settings()?;
    let updated = state
        .services
        .oidc_clients
        .update_by(&auth, &id, settings, &client)
        .await?;
    Ok(Json(updated.into()))
}

/// Delete an OpenID client (admins of the tenant): every session it holds ends, at the edge
/// too.
#[utoipa::path(delete, path = "/api/auth/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_client(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .oidc_clients
        .delete_by(&auth, &id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
