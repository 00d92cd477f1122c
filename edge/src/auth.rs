//! Access tokens at the edge: core's strict verification (signature by WebCrypto), then the
//! session's revocation, and `GET /api/auth/verify` answered here with the origin's body.

use tessera_core::api::{bearer_token, Problem, VerifiedUser, VerifyAnswer};
use tessera_core::jwt::AccessClaims;
use worker::{Date, Env, Headers, Response, Result};

use crate::config::Config;
use crate::keys::{self, Refusal};
use crate::problem::{problem, problem_body, revocations_unavailable};
use crate::revocations;

/// The bearer token, when it has the shape of a JWT. Opaque bearer tokens (service tokens,
/// session tokens) are the origin's to judge.
pub fn bearer_jwt(headers: &Headers) -> Result<Option<String>> {
    let value = headers.get("authorization")?.unwrap_or_default();
    Ok(bearer_token(&value)
        .filter(|token| token.split('.').count() == 3)
        .map(str::to_owned))
}

/// The bearer token, when it has the form of a service API token (the origin judges those;
/// see `service_tokens`).
pub fn bearer_service(headers: &Headers) -> Result<Option<String>> {
    let value = headers.get("authorization")?.unwrap_or_default();
    Ok(bearer_token(&value)
        .filter(|token| crate::service_tokens::is_service_token(token))
        .map(str::to_owned))
}

/// How a refusal is worded, as the origin words it for the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wording {
    /// A verification endpoint: the body says `valid: false`.
    pub valid_false: bool,
    /// A VoiceStamp v1 route: the body also says `success: false` and a `message`.
    pub voicestamp: bool,
}

impl Wording {
    /// The wording for a request to `path`; `verify` for the verification endpoints.
    #[must_use]
    pub fn for_request(path: &str, verify: bool) -> Self {
        Self {
            valid_false: verify,
            voicestamp: tessera_core::api::speaks_voicestamp(path),
        }
    }
}

/// The 401 for a refused token, exactly as the origin words it.
pub fn token_problem(code: &str, detail: &str, wording: Wording) -> Result<Response> {
    let mut body = Problem::new(401, code, "Invalid token", Some(detail));
    body.valid = wording.valid_false.then_some(false);
    if wording.voicestamp {
        body = body.for_voicestamp();
    }
    problem_body(&body)
}

/// Verifies a JWT and checks its session is not revoked. `Ok(Err(response))` is the refusal to
/// answer, worded as `wording` says.
pub async fn authenticate(
    env: &Env,
    config: &Config,
    token: &str,
    wording: Wording,
) -> Result<std::result::Result<AccessClaims, Response>> {
    let claims = match keys::verify(config, token).await {
        Ok(claims) => claims,
        Err(Refusal::Invalid(error)) => {
            return Ok(Err(token_problem(
                error.code(),
                &error.to_string(),
                wording,
            )?))
        }
        Err(Refusal::KeysUnavailable) => {
            return Ok(Err(problem(
                503,
                "keys_unavailable",
                "Service unavailable",
                Some("The signing keys cannot be fetched."),
            )?))
        }
    };
    if claims.is_restricted() {
        return Ok(Err(token_problem(
            "restricted_token",
            "This token can only enrol a second factor.",
            wording,
        )?));
    }
    let now = Date::now().as_millis() / 1000;
    match revocations::is_revoked(env, &claims.tid, &claims.sid, now).await {
        Ok(false) => Ok(Ok(claims)),
        Ok(true) => Ok(Err(token_problem(
            "invalid_token",
            "The token's session has ended.",
            wording,
        )?)),
        Err(error) => Ok(Err(revocations_unavailable(&error)?)),
    }
}

/// `GET /api/auth/verify` (or VoiceStamp's `GET /api/v1/auth/verify`) with a JWT, answered
/// with the origin's body.
pub async fn verify_here(
    env: &Env,
    config: &Config,
    token: &str,
    wording: Wording,
) -> Result<Response> {
    match authenticate(env, config, token, wording).await? {
        Err(refused) => Ok(refused),
        Ok(claims) => Response::from_json(&VerifyAnswer::new(
            VerifiedUser {
                id: claims.sub,
                email: claims.email,
                role: claims.role,
            },
            claims.tid,
            claims.exp,
        )),
    }
}
