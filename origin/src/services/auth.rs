//! Sign-in, token issue, refresh rotation, sign-out, sessions and bearer authentication.

use std::net::IpAddr;

use tessera_core::jwt::AccessClaims;
use tessera_core::lifetimes::{ACCESS_TOKEN_SECS, REFRESH_FAMILY_SECS};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::{account_subject, RouteClass};
use tessera_core::token::{OpaqueToken, TokenKind};

use crate::clock;
use crate::error::ApiError;
use crate::keys::hmac_sha256;
use crate::password::Busy;
use crate::state::AppState;
use crate::store::{AuditEvent, NewSession, RefreshOutcome, Session, User};

/// Who is asking, as far as the network can tell.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client IP (see `http::client` for which headers are believed).
    pub ip: IpAddr,
    /// User agent, truncated.
    pub user_agent: String,
}

/// Tokens issued by a sign-in or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The access token (JWT).
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    /// The refresh token (opaque).
    pub refresh_token: String,
    /// End of the refresh family, Unix seconds.
    pub refresh_expires_at: i64,
    /// Unix seconds of issue.
    pub issued_at: i64,
    /// The user.
    pub user: User,
    /// The tenant.
    pub tenant: TenantSlug,
}

/// A request whose bearer token verified, whose session is active and whose user is enabled.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified claims.
    pub claims: AccessClaims,
    /// The token's user, as stored now.
    pub user: User,
    /// The token's tenant.
    pub tenant: TenantSlug,
    /// The token's user.
    pub user_id: UserId,
    /// The token's session.
    pub session_id: SessionId,
}

impl From<Busy> for ApiError {
    fn from(_: Busy) -> Self {
        ApiError::busy()
    }
}

fn audit_event(
    event: &str,
    client: &Client,
    user: Option<&UserId>,
    session: Option<&SessionId>,
    detail: String,
) -> AuditEvent {
    AuditEvent {
        at: clock::now_secs(),
        event: event.to_owned(),
        user_id: user.map(ToString::to_string),
        session_id: session.map(ToString::to_string),
        ip: client.ip.to_string(),
        user_agent: client.user_agent.clone(),
        detail,
    }
}

/// Appends to the audit log; a failure is logged, never fails the request it describes.
async fn audit(state: &AppState, tenant: &TenantSlug, event: AuditEvent) {
    if let Err(error) = state.store.audit(tenant, &event).await {
        tracing::error!(%error, event = %event.event, "audit write failed");
    }
}

/// Signs in with tenant, email and password. Every failure (unknown tenant, unknown email,
/// wrong password, disabled account) is the same 401 after the same argon2 work.
pub async fn login(
    state: &AppState,
    tenant: &str,
    email: &str,
    password: String,
    client: &Client,
) -> Result<Issued, ApiError> {
    let started = std::time::Instant::now();
    let result = login_inner(state, tenant, email, password, client).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) if e.code() == "invalid_credentials" => "invalid_credentials",
        Err(e) if e.code() == "rate_limited" => "rate_limited",
        Err(_) => "error",
    };
    metrics::counter!("tessera_sign_in_total", "outcome" => outcome).increment(1);
    metrics::histogram!("tessera_sign_in_seconds").record(started.elapsed().as_secs_f64());
    result
}

async fn login_inner(
    state: &AppState,
    tenant: &str,
    email: &str,
    password: String,
    client: &Client,
) -> Result<Issued, ApiError> {
    let slug = TenantSlug::parse(tenant).ok();
    let email = Email::parse(email).ok();
    if let (Some(slug), Some(email)) = (&slug, &email) {
        state
            .limiter
            .enforce(RouteClass::Credential, &account_subject(slug, email))
            .await?;
    }
    let tenant = match &slug {
        Some(slug) => state.tenants.get(slug).await?,
        None => None,
    };
    let user = match (&tenant, &email) {
        (Some(tenant), Some(email)) => state.store.user_by_email(&tenant.slug, email).await?,
        _ => None,
    };
    let tenant_exists = tenant.is_some();
    let usable = user
        .as_ref()
        .filter(|u| !u.disabled && u.password_hash.is_some());
    let verified = state
        .hasher
        .verify(
            password.clone(),
            usable.and_then(|u| u.password_hash.clone()),
        )
        .await?;
    let (Some(tenant), Some(user), true) = (tenant, usable, verified.matched) else {
        if let (true, Some(slug), Some(email)) = (tenant_exists, &slug, &email) {
            let event = audit_event(
                "login_failed",
                client,
                user.as_ref().map(|u| &u.id),
                None,
                format!("email={email}"),
            );
            // Written off the request path, so that a failure in an existing tenant takes no
            // longer to answer than one in a tenant that does not exist.
            let (state, slug) = (state.clone(), slug.clone());
            tokio::spawn(async move { audit(&state, &slug, event).await });
        }
        return Err(ApiError::invalid_credentials());
    };
    if verified.needs_rehash {
        if let Ok(hash) = state.hasher.hash(password).await {
            state
                .store
                .set_password_hash(&tenant.slug, &user.id, &hash, clock::now_secs())
                .await?;
        }
    }
    let issued = start_session(state, &tenant.slug, user.clone(), &["pwd"], client).await?;
    Ok(issued)
}

/// Starts a session for an authenticated user and issues its first tokens.
pub async fn start_session(
    state: &AppState,
    tenant: &TenantSlug,
    user: User,
    amr: &[&str],
    client: &Client,
) -> Result<Issued, ApiError> {
    let now = clock::now_secs();
    let session = Session {
        id: SessionId::from_random_bytes(clock::random()),
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at: now + REFRESH_FAMILY_SECS.cast_signed(),
        revoked_at: None,
        ip: client.ip.to_string(),
        user_agent: client.user_agent.clone(),
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
    };
    let refresh = OpaqueToken::generate(TokenKind::Refresh, tenant, clock::random());
    let audit = audit_event(
        "login_succeeded",
        client,
        Some(&user.id),
        Some(&session.id),
        amr.join(" "),
    );
    state
        .store
        .create_session(
            tenant,
            &NewSession {
                session: session.clone(),
                refresh_digest: refresh.digest(),
                audit,
            },
        )
        .await?;
    issue(state, tenant, user, &session, refresh, now).await
}

async fn issue(
    state: &AppState,
    tenant: &TenantSlug,
    user: User,
    session: &Session,
    refresh: OpaqueToken,
    now: i64,
) -> Result<Issued, ApiError> {
    let now_u = u64::try_from(now).unwrap_or(0);
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user.id.to_string(),
        email: user.email.to_string(),
        role: user.role.clone(),
        aud: state.config.audience.clone(),
        tid: tenant.to_string(),
        sid: session.id.to_string(),
        iat: now_u,
        nbf: now_u,
        exp: now_u + ACCESS_TOKEN_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
        amr: session.amr.clone(),
    };
    let access_token = state
        .keys
        .signer()
        .await
        .sign(&claims)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Issued {
        access_token,
        access_expires_at: now + ACCESS_TOKEN_SECS.cast_signed(),
        refresh_token: refresh.expose().to_owned(),
        refresh_expires_at: session.expires_at,
        issued_at: now,
        user,
        tenant: tenant.clone(),
    })
}

/// The successor of a refresh token: derived from the token under a server key, so that two
/// concurrent presentations compute the same successor and the grace window can hand it out
/// again without the server ever storing a usable token.
fn successor(state: &AppState, presented: &OpaqueToken) -> OpaqueToken {
    let random = hmac_sha256(state.refresh_key.as_slice(), presented.expose().as_bytes());
    OpaqueToken::generate(TokenKind::Refresh, presented.tenant(), random)
}

/// Exchanges a refresh token for new tokens (rotation with reuse detection).
pub async fn refresh(
    state: &AppState,
    presented: &str,
    named_tenant: Option<&TenantSlug>,
    client: &Client,
) -> Result<Issued, ApiError> {
    let invalid = || {
        ApiError::invalid_token("invalid_refresh_token").detail("The refresh token is not valid.")
    };
    let token = OpaqueToken::parse(TokenKind::Refresh, presented).map_err(|_| invalid())?;
    let tenant = token.tenant().clone();
    crate::tenants::ensure_same(&tenant, named_tenant)?;
    if state.tenants.get(&tenant).await?.is_none() {
        return Err(invalid());
    }
    let next = successor(state, &token);
    let now = clock::now_secs();
    let grace = i64::try_from(state.config.refresh_grace_secs).unwrap_or(0);
    let event = audit_event("refresh", client, None, None, String::new());
    let outcome = state
        .store
        .rotate_refresh(&tenant, &token.digest(), &next.digest(), now, grace, &event)
        .await?;
    let (session, user) = match outcome {
        RefreshOutcome::Rotated(session, user) => (session, user),
        RefreshOutcome::GraceReplay(session, user) => {
            let event = audit_event(
                "refresh_grace_replay",
                client,
                Some(&user.id),
                Some(&session.id),
                String::new(),
            );
            audit(state, &tenant, event).await;
            (session, user)
        }
        RefreshOutcome::ReuseDetected(session) => {
            revoked(state, &tenant, &session.id);
            tracing::warn!(tenant = %tenant, session = %session.id, "refresh token reuse: family revoked");
            audit(
                state,
                &tenant,
                audit_event(
                    "refresh_reuse_detected",
                    client,
                    Some(&session.user_id),
                    Some(&session.id),
                    String::new(),
                ),
            )
            .await;
            return Err(invalid());
        }
        RefreshOutcome::Invalid => return Err(invalid()),
    };
    issue(state, &tenant, user, &session, next, now).await
}

/// Verifies a bearer token and checks its session is still active: a signed-out session's
/// access token is refused from then on, not only when it expires.
pub async fn authenticate(state: &AppState, bearer: &str) -> Result<Authenticated, ApiError> {
    let now = clock::now_secs();
    let verifier = state.keys.verifier().await;
    let claims = verifier
        .verify(bearer, u64::try_from(now).unwrap_or(0))
        .map_err(|e| ApiError::invalid_token(e.code()).detail(e.to_string()))?;
    let invalid =
        || ApiError::invalid_token("invalid_token").detail("The token's session has ended.");
    let tenant = TenantSlug::parse(&claims.tid).map_err(|_| invalid())?;
    let user_id = UserId::parse(&claims.sub).map_err(|_| invalid())?;
    let session_id = SessionId::parse(&claims.sid).map_err(|_| invalid())?;
    if state.tenants.get(&tenant).await?.is_none() {
        return Err(invalid());
    }
    let (session, user) = match state.sessions.get(&tenant, &session_id) {
        Some(hit) => hit,
        None => {
            let Some((session, user)) = state.store.session_with_user(&tenant, &session_id).await?
            else {
                return Err(invalid());
            };
            state.sessions.put(&tenant, &session, &user);
            (session, user)
        }
    };
    if !session.is_active(now) || session.user_id != user_id || user.disabled {
        return Err(invalid());
    }
    Ok(Authenticated {
        claims,
        user,
        tenant,
        user_id,
        session_id,
    })
}

/// Ends a session (sign-out, or the user ending one of their sessions).
pub async fn end_session(
    state: &AppState,
    tenant: &TenantSlug,
    user: &UserId,
    session: &SessionId,
    event: &str,
    client: &Client,
) -> Result<bool, ApiError> {
    let ended = state
        .store
        .revoke_session(tenant, session, event, clock::now_secs())
        .await?;
    revoked(state, tenant, session);
    if ended {
        audit(
            state,
            tenant,
            audit_event(event, client, Some(user), Some(session), String::new()),
        )
        .await;
    }
    Ok(ended)
}

/// Everything that must follow a revocation: this node's cache forgets the session at once, and
/// the edge is told.
fn revoked(state: &AppState, tenant: &TenantSlug, session: &SessionId) {
    state.sessions.invalidate(tenant, session);
    if let Some(edge) = &state.edge {
        edge.revoke(tenant, session);
    }
}
