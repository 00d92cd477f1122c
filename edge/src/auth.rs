//! Access tokens at the edge: core's strict verification (signature by WebCrypto), then the
//! session's revocation, and `GET /api/auth/verify` answered here with the origin's body.

use tessera_core::api::{bearer_token, Problem, VerifyAnswer};
use tessera_core::edge::key_removal_key;
use tessera_core::jwt::AccessClaims;
use tessera_core::model::TenantSlug;
use tessera_core::policy::{Credentials, Purpose, Route};
use tessera_core::tenant::NamedTenantError;
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
    /// Plain problem+json: an application route's refusals.
    pub const PLAIN: Self = Self {
        valid_false: false,
        voicestamp: false,
    };

    /// The wording of a route's answers, from its row in core's table.
    #[must_use]
    pub fn of(route: &Route) -> Self {
        Self {
            valid_false: route.purpose == Purpose::Verify,
            voicestamp: route.api.voicestamp_wording(),
        }
    }

    /// A refusal worded so.
    pub fn refuse(self, mut body: Problem) -> Result<Response> {
        body.valid = self.valid_false.then_some(false);
        if self.voicestamp {
            body = body.for_voicestamp();
        }
        problem_body(&body)
    }
}

/// The 401 for a refused token, exactly as the origin words it.
pub fn token_problem(code: &str, detail: &str, wording: Wording) -> Result<Response> {
    wording.refuse(Problem::new(401, code, "Invalid token", Some(detail)))
}

/// Refuses a token whose tenant is not the one the request names, exactly as the origin does:
/// 403 `tenant_mismatch`; a malformed `X-Tenant` (400) or a header and subdomain that disagree
/// (403) are answered only once the token itself was found good, as at the origin.
pub fn check_tenant(
    token_tenant: &str,
    named: &std::result::Result<Option<TenantSlug>, NamedTenantError>,
    wording: Wording,
) -> Result<Option<Response>> {
    match named {
        Ok(Some(named)) if named.as_str() != token_tenant => Ok(Some(
            wording.refuse(tessera_core::tenant::mismatch_problem())?,
        )),
        Ok(_) => Ok(None),
        Err(error) => Ok(Some(wording.refuse(error.problem())?)),
    }
}

/// Verifies a JWT and checks its session is not revoked. `Ok(Err(response))` is the refusal to
/// answer, worded as `wording` says.
pub async fn authenticate(
    env: &Env,
    config: &Config,
    token: &str,
    accepts: Credentials,
    wording: Wording,
) -> Result<std::result::Result<AccessClaims, Response>> {
    let (claims, kid) = match keys::verify(config, token).await {
        Ok(verified) => (verified.claims, verified.kid),
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
    let enrolling = accepts.accepts(Credentials::ENROL)
        && claims.scope.as_deref() == Some(tessera_core::jwt::ENROL_SCOPE);
    if claims.is_restricted() && !enrolling {
        return Ok(Err(token_problem(
            "restricted_token",
            "This token can only enrol a second factor.",
            wording,
        )?));
    }
    let now = Date::now().as_millis() / 1000;
    // A key removed at the origin (`tessera keys remove`) reaches the edge through the
    // revocation log, like a session's end; isolates that still hold it refuse its tokens.
    let key_removed = revocations::is_revoked(env, "", &key_removal_key(&kid), now).await;
    let session_ended = revocations::is_revoked(env, &claims.tid, &claims.sid, now).await;
    let refused = match (key_removed, session_ended) {
        (Ok(key), Ok(session)) => Ok(key || session),
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    match refused {
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
/// with the origin's body: from the token's claims (docs/API.md, "The verification answer").
pub async fn verify_here(
    env: &Env,
    config: &Config,
    token: &str,
    named: &std::result::Result<Option<TenantSlug>, NamedTenantError>,
    wording: Wording,
) -> Result<Response> {
    match authenticate(env, config, token, Credentials::ACCESS, wording).await? {
        Err(refused) => Ok(refused),
        Ok(claims) => {
            if let Some(refused) = check_tenant(&claims.tid, named, wording)? {
                return Ok(refused);
            }
            Response::from_json(&VerifyAnswer::for_claims(&claims))
        }
    }
}
