//! Access tokens at the edge: core's strict verification (signature by WebCrypto), then the
//! session's revocation, and `GET /api/auth/verify` answered here with the origin's body.

use tessera_core::api::{bearer_token, Problem, VerifiedUser, VerifyAnswer};
use tessera_core::jwt::AccessClaims;
use worker::{console_error, Date, Env, Headers, Response, Result};

use crate::config::Config;
use crate::keys::{self, Refusal};
use crate::problem::{problem, problem_body};
use crate::revocations;

/// The bearer token, when it has the shape of a JWT. Opaque bearer tokens (service tokens,
/// session tokens) are the origin's to judge.
pub fn bearer_jwt(headers: &Headers) -> Result<Option<String>> {
    let value = headers.get("authorization")?.unwrap_or_default();
    Ok(bearer_token(&value)
        .filter(|token| token.split('.').count() == 3)
        .map(str::to_owned))
}

/// The 401 for a refused token, exactly as the origin words it.
pub fn token_problem(code: &str, detail: &str, valid_false: bool) -> Result<Response> {
    let mut body = Problem::new(401, code, "Invalid token", Some(detail));
    body.valid = valid_false.then_some(false);
    problem_body(&body)
}

/// Verifies a JWT and checks its session is not revoked. `Ok(Err(response))` is the refusal to
/// answer; `valid_false` marks it for verification endpoints.
pub async fn authenticate(
    env: &Env,
    config: &Config,
    token: &str,
    valid_false: bool,
) -> Result<std::result::Result<AccessClaims, Response>> {
    let claims = match keys::verify(config, token).await {
        Ok(claims) => claims,
        Err(Refusal::Invalid(error)) => {
            return Ok(Err(token_problem(
                error.code(),
                &error.to_string(),
                valid_false,
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
            valid_false,
        )?));
    }
    let now = Date::now().as_millis() / 1000;
    match revocations::is_revoked(env, &claims.tid, &claims.sid, now).await {
        Ok(false) => Ok(Ok(claims)),
        Ok(true) => Ok(Err(token_problem(
            "invalid_token",
            "The token's session has ended.",
            valid_false,
        )?)),
        Err(error) => {
            console_error!("revocation check failed: {error}");
            Ok(Err(problem(
                503,
                "revocations_unavailable",
                "Service unavailable",
                None,
            )?))
        }
    }
}

/// `GET /api/auth/verify` with a JWT, answered with the origin's body.
pub async fn verify_here(env: &Env, config: &Config, token: &str) -> Result<Response> {
    match authenticate(env, config, token, true).await? {
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
