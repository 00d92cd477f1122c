//! Extractors that turn bad input into problem+json instead of axum's plain-text rejections.

use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use tessera_core::jwt::AccessClaims;
use tessera_core::policy::{AccountField, Lookup};
use tessera_core::ratelimit::bearer_subject;

use super::problem::ApiError;
use crate::services::{Authenticated, Client, ServicePrincipal};
use crate::state::AppState;

/// A JSON body; malformed JSON → 400 `malformed_json`, wrong shape → 400 `invalid_request`
/// (a body that is not an object included: serde would read a struct from an array), wrong
/// content type → 415, over the route's limit → 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(&JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| json_rejection(&JsonRejection::BytesRejection(rejection)))?;
        json_object(&bytes)
    }
}

/// Whether the request says its body is JSON (`application/json`, or `application/*+json`),
/// as axum's `Json` decides it.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that must be a JSON object, read into `T`.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<ApiJson<T>, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => {
                    ApiError::bad_request("invalid_request", "The body must be a JSON object.")
                }
                Err(_) => {
                    ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
                }
            },
        );
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(value)| ApiJson(value))
        .map_err(|rejection| json_rejection(&rejection))
}

/// A JSON body that may be left out: a request with an empty body (with or without a JSON
/// content type) reads as `T::default()`, for a route whose every field is optional, which
/// clients call without a body. A body that is sent is judged as [`ApiJson`] judges it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|rejection| json_rejection(&JsonRejection::BytesRejection(rejection)))?;
        // No body, or `null`, is no body.
        if bytes.is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(Self(T::default()));
        }
        let again = Request::from_parts(parts, axum::body::Body::from(bytes));
        let ApiJson(value) = ApiJson::<T>::from_request(again, state).await?;
        Ok(Self(value))
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_request", e.body_text()),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
        )
        .detail("Send the body as application/json."),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
        )
        .detail("The request body is larger than 64 KiB."),
        // The body stopped arriving: the body-read timeout (or the client went away, in which
        // case nobody reads this answer).
        JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
            FailedToBufferBody::UnknownBodyError(_),
        )) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timeout",
        )
        .detail("The request body did not arrive in time."),
        other => ApiError::bad_request("invalid_request", other.body_text()),
    }
}

/// The raw bearer token of the `Authorization` header.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(tessera_core::api::bearer_token)
            .map(|token| Self(token.to_owned()))
            .ok_or_else(|| {
                ApiError::invalid_token("missing_token")
                    .detail("Send Authorization: Bearer <token>.")
            })
    }
}

/// A request with a valid access token of an active session, whose tenant matches any tenant
/// the request names in its headers (`X-Tenant`, subdomain): otherwise 401 or 403.
pub struct Auth(pub Authenticated);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        // A bad token is answered before a bad tenant header, as it always was.
        let named = super::tenant::named_by_request(&parts.headers, &state.config);
        let authenticated = state
            .services
            .authenticate
            .authenticate(&token, named.as_ref().ok().and_then(Option::as_ref))
            .await?;
        named?;
        charge_the_tokens_account(parts, state, &authenticated).await?;
        Ok(Self(authenticated))
    }
}

/// The per-account limit of a route whose row in core's table charges the token's account
/// (`AccountField::BearerAccount`: it checks a password or code behind the token), as the edge
/// charges it once the token has verified.
async fn charge_the_tokens_account(
    parts: &Parts,
    state: &AppState,
    caller: &Authenticated,
) -> Result<(), ApiError> {
    let Some(Lookup::Route(route)) = parts.extensions.get::<Lookup>() else {
        return Ok(());
    };
    if route.account == Some(AccountField::BearerAccount) && route.class.per_account() {
        let subject = bearer_subject(&caller.claims.tid, &caller.claims.sub);
        state.limiter.enforce(route.class, &subject).await?;
    }
    Ok(())
}

/// A caller of a verification endpoint: a user's access token (or VoiceStamp session token),
/// judged from the token and the revocation index alone, or a service API token.
pub enum Principal {
    /// A user's session, as its token's claims say.
    User(Box<AccessClaims>),
    /// A service token.
    Service(ServicePrincipal),
}

impl Principal {
    /// The verification answer for this caller (the same body the edge gives).
    #[must_use]
    pub fn verify_answer(&self) -> tessera_core::api::VerifyAnswer {
        match self {
            Self::User(claims) => tessera_core::api::VerifyAnswer::for_claims(claims),
            Self::Service(service) => tessera_core::api::VerifyAnswer::service(
                service.token.id.clone(),
                service.tenant.to_string(),
                service.token.expires_at,
                tessera_core::api::ServiceAnswer {
                    name: service.token.name.clone(),
                    scopes: service.token.scopes.clone(),
                },
            ),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        let named = super::tenant::named_by_request(&parts.headers, &state.config);
        if !token.starts_with(tessera_core::token::TokenKind::ServiceApi.prefix()) {
            let claims = state
                .services
                .authenticate
                .verify_claims(&token, named.as_ref().ok().and_then(Option::as_ref))
                .await?;
            named?;
            return Ok(Self::User(Box::new(claims)));
        }
        Ok(Self::Service(service_token(parts, state, &token).await?))
    }
}

/// The service token `token`, whose tenant must match any tenant the request names in its
/// headers: a bad token is answered before a bad tenant header, as for access tokens.
async fn service_token(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<ServicePrincipal, ApiError> {
    let named = super::tenant::named_by_request(&parts.headers, &state.config);
    let service = state
        .services
        .api_tokens
        .authenticate(token, named.as_ref().ok().and_then(Option::as_ref))
        .await?;
    named?;
    Ok(service)
}

/// A caller authenticated by a bearer token that may also be restricted to enrolling a second
/// factor: only the TOTP enrolment routes take it.
pub struct EnrolAuth(pub Authenticated);

impl FromRequestParts<AppState> for EnrolAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        let named = super::tenant::named_by_request(&parts.headers, &state.config);
        let authenticated = state
            .services
            .authenticate
            .authenticate_for_enrolment(&token, named.as_ref().ok().and_then(Option::as_ref))
            .await?;
        named?;
        charge_the_tokens_account(parts, state, &authenticated).await?;
        Ok(Self(authenticated))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Client>().cloned().ok_or_else(|| {
            ApiError::internal(&std::io::Error::other("client context layer missing"))
        })
    }
}

/// The scope a service token needs to read a tenant's users over the admin API.
pub const USERS_READ: &str = "users:read";
/// The scope a service token needs to change them (it reads too).
pub const USERS_WRITE: &str = "users:write";

/// A caller of the tenant admin API (`/api/auth/admin/users…`): an admin of the tenant, by
/// their access token, or a service token of the tenant whose scopes allow the method
/// (`users:read` for `GET`, `users:write` for everything, reads included). No valid credential
/// is a 401; a valid one without the right is a 403 `forbidden`.
pub struct TenantAdmin {
    /// The tenant acted on: the credential's.
    pub tenant: tessera_core::model::TenantSlug,
    /// Who acts, for the audit log.
    pub actor: crate::services::Actor,
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = Client::from_request_parts(parts, state).await?;
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        if !token.starts_with(tessera_core::token::TokenKind::ServiceApi.prefix()) {
            let Auth(caller) = Auth::from_request_parts(parts, state).await?;
            crate::services::require_admin(&caller)?;
            return Ok(Self {
                tenant: caller.tenant.clone(),
                actor: crate::services::Actor::Admin {
                    user: caller.user_id,
                    session: caller.session_id,
                    client,
                },
            });
        }
        let service = service_token(parts, state, &token).await?;
        let needed = if parts.method == axum::http::Method::GET {
            [USERS_READ, USERS_WRITE].as_slice()
        } else {
            [USERS_WRITE].as_slice()
        };
        if !service
            .token
            .scopes
            .iter()
            .any(|s| needed.contains(&s.as_str()))
        {
            return Err(
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(format!(
                    "This service token lacks the scope {}.",
                    needed.last().copied().unwrap_or(USERS_WRITE)
                )),
            );
        }
        Ok(Self {
            tenant: service.tenant,
            actor: crate::services::Actor::Service {
                id: service.token.id,
                client,
            },
        })
    }
}

/// A caller of the operator API (`/api/admin/*`): an operator token. No bearer, or a bad
/// operator token, is a 401; any other credential (a tenant's admin's token, a service token)
/// is a 403: tenants never reach the operator API.
pub struct OperatorCaller(pub crate::services::Actor);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = Client::from_request_parts(parts, state).await?;
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        if !token.starts_with(tessera_core::token::OperatorToken::PREFIX) {
            return Err(
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                    .detail("Only an operator token opens the operator API."),
            );
        }
        let record = state
            .services
            .operator_tokens
            .authenticate(&token)
            .await
            .map_err(|error| match error {
                crate::services::ServiceError::InvalidServiceToken => {
                    ApiError::invalid_token("invalid_token")
                        .detail("The operator token is not valid: unknown, revoked or expired.")
                }
                other => other.into(),
            })?;
        Ok(Self(crate::services::Actor::OperatorToken {
            id: record.id,
            client,
        }))
    }
}

/// A query string; one that does not fit `T` (an unknown parameter, a limit that is no
/// number) → 400 `invalid_request`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request("invalid_request", rejection.body_text()))
    }
}
