//! Sessions and the tokens that carry them: a new session's rows, access tokens, and the
//! derivation of refresh-token successors.

use std::sync::Arc;

use tessera_core::jwt::{AccessClaims, Audience};
use tessera_core::lifetimes::{ACCESS_TOKEN_SECS, REFRESH_FAMILY_SECS};
use tessera_core::model::{SessionId, TenantSlug};
use tessera_core::token::{OpaqueToken, TokenKind};

use super::{audit_event, Client, ServiceResult};
use crate::clock::{self, SharedClock};
use crate::keys::{hmac_sha256, Keyring};
use crate::store::{Membership, Session, TenantTx, User};

/// Tokens issued by a sign-in or a refresh. `Debug` never prints a token.
#[derive(Clone)]
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
    /// The session the tokens carry.
    pub session: Session,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_token", &"***")
            .field("refresh_token", &"***")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("user", &self.user.id)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// What sets a token apart from a plain access token.
#[derive(Default)]
struct Extra<'a> {
    /// A restricted token's scope.
    scope: Option<&'a str>,
    /// The expiry, if not 15 minutes from now.
    exp: Option<u64>,
    /// The team a vault token names.
    team: Option<&'a Membership>,
}

/// Starts sessions and issues their tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    keys: Keyring,
    issuer: Arc<str>,
    audience: Arc<str>,
    refresh_key: Arc<[u8; 32]>,
    clock: SharedClock,
}

impl TokenIssuer {
    /// An issuer signing with `keys` for `issuer`/`audience`; `refresh_key` derives successors.
    #[must_use]
    pub fn new(
        keys: Keyring,
        issuer: &str,
        audience: &str,
        refresh_key: [u8; 32],
        clock: SharedClock,
    ) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            refresh_key: Arc::new(refresh_key),
            clock,
        }
    }

    /// Writes a new session of `user`, its first refresh token and the sign-in's audit event
    /// into `tx`. The caller commits, then calls [`TokenIssuer::issue`].
    pub async fn open_session(
        &self,
        tx: &mut TenantTx,
        user: &User,
        amr: &[&str],
        client: &Client,
    ) -> ServiceResult<(Session, OpaqueToken)> {
        self.open_session_for(tx, user, amr, client, REFRESH_FAMILY_SECS)
            .await
    }

    /// [`TokenIssuer::open_session`] for a session that lasts `lifetime_secs` (a VoiceStamp
    /// session token's 30 days; the refresh family's 7 days otherwise).
    pub async fn open_session_for(
        &self,
        tx: &mut TenantTx,
        user: &User,
        amr: &[&str],
        client: &Client,
        lifetime_secs: u64,
    ) -> ServiceResult<(Session, OpaqueToken)> {
        let now = self.clock.now_secs();
        let session = Session {
            id: SessionId::from_random_bytes(clock::random()),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + lifetime_secs.cast_signed(),
            revoked_at: None,
            ip: client.ip.to_string(),
            user_agent: client.user_agent.clone(),
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            api: client.api.name().to_owned(),
        };
        let refresh = OpaqueToken::generate(TokenKind::Refresh, tx.tenant(), clock::random());
        tx.sessions().create(&session, &refresh.digest()).await?;
        let event = audit_event(
            "login_succeeded",
            client,
            Some(&user.id),
            Some(&session.id),
            amr.join(" "),
            now,
        );
        tx.audit().append(&event).await?;
        Ok((session, refresh))
    }

    /// Signs an access token for `session` and hands out `refresh` with it.
    pub async fn issue(
        &self,
        tenant: &TenantSlug,
        user: User,
        session: &Session,
        refresh: &OpaqueToken,
    ) -> ServiceResult<Issued> {
        let now = self.clock.now_secs();
        let access_token = self.sign(tenant, &user, session, Extra::default()).await?;
        Ok(Issued {
            access_token,
            access_expires_at: now + ACCESS_TOKEN_SECS.cast_signed(),
            refresh_token: refresh.expose().to_owned(),
            refresh_expires_at: session.expires_at,
            issued_at: now,
            user,
            tenant: tenant.clone(),
            session: session.clone(),
        })
    }

    /// Signs a plain access token for `session` (15 minutes).
    pub async fn issue_access(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
    ) -> ServiceResult<String> {
        self.sign(tenant, user, session, Extra::default()).await
    }

    /// Signs an access token for `session` restricted to `scope`, with no refresh token: it
    /// ends with its 15 minutes.
    pub async fn issue_restricted(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
        scope: &str,
    ) -> ServiceResult<String> {
        let extra = Extra {
            scope: Some(scope),
            ..Extra::default()
        };
        self.sign(tenant, user, session, extra).await
    }

    /// Signs a session token that lives as long as its session (VoiceStamp v1's 30-day token):
    /// a JWT like an access token, so that the edge checks it without the origin, and bound to
    /// the session, so that ending the session revokes it. Answers it and its expiry.
    pub async fn issue_session_token(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
    ) -> ServiceResult<(String, i64)> {
        let exp = u64::try_from(session.expires_at).unwrap_or(0);
        let extra = Extra {
            exp: Some(exp),
            ..Extra::default()
        };
        let token = self.sign(tenant, user, session, extra).await?;
        Ok((token, session.expires_at))
    }

    /// Signs the team/vault API's `vaultToken`: an access token of the same session that also
    /// names the user's default team and role in it (`team`, `team_role`), or no team before
    /// the user has one.
    pub async fn issue_vault_token(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
        team: Option<&Membership>,
    ) -> ServiceResult<String> {
        let extra = Extra {
            team,
            ..Extra::default()
        };
        self.sign(tenant, user, session, extra).await
    }

    /// Signs an access token an OpenID client holds as itself (`client_credentials`): its
    /// subject is the client, its session `sid` the client's own ([`client_session`]), which
    /// deleting the client ends. It names no user (`email` empty, `role` `client`).
    pub async fn issue_client_token(
        &self,
        tenant: &TenantSlug,
        client_id: &str,
        sid: &SessionId,
    ) -> ServiceResult<String> {
        let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
        let claims = AccessClaims {
            iss: self.issuer.to_string(),
            sub: client_id.to_owned(),
            email: String::new(),
            role: "client".to_owned(),
            aud: Audience::for_tenant(&self.audience, tenant.as_str()),
            tid: tenant.to_string(),
            sid: sid.to_string(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
            amr: Vec::new(),
            email_verified: false,
            scope: None,
            team: None,
            team_role: None,
        };
        Ok(self.keys.signer().await.sign(&claims)?)
    }

    async fn sign(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
        extra: Extra<'_>,
    ) -> ServiceResult<String> {
        let now = self.clock.now_secs();
        let now_u = u64::try_from(now).unwrap_or(0);
        let claims = AccessClaims {
            iss: self.issuer.to_string(),
            sub: user.id.to_string(),
            email: user.email.to_string(),
            role: user.role.clone(),
            aud: Audience::for_tenant(&self.audience, tenant.as_str()),
            tid: tenant.to_string(),
            sid: session.id.to_string(),
            iat: now_u,
            nbf: now_u,
            exp: extra.exp.unwrap_or(now_u + ACCESS_TOKEN_SECS),
            jti: uuid::Uuid::new_v4().to_string(),
            amr: session.amr.clone(),
            email_verified: user.email_verified(),
            scope: extra.scope.map(str::to_owned),
            team: extra.team.map(|t| t.team_id.clone()),
            team_role: extra.team.map(|t| t.role.clone()),
        };
        Ok(self.keys.signer().await.sign(&claims)?)
    }

    /// The successor of a refresh token: derived from the token under a server key, so that two
    /// concurrent presentations compute the same successor and the grace window can hand it out
    /// again without the server ever storing a usable token.
    #[must_use]
    pub fn successor(&self, presented: &OpaqueToken) -> OpaqueToken {
        let random = hmac_sha256(self.refresh_key.as_slice(), presented.expose().as_bytes());
        OpaqueToken::generate(TokenKind::Refresh, presented.tenant(), random)
    }
}
