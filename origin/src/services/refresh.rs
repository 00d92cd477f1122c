//! Refresh-token exchange: core's rule decides, this applies the verdict in the same unit of
//! work that read the token under a lock.

use std::sync::Arc;

use tessera_core::model::TenantSlug;
use tessera_core::refresh::{decide, Presented, Verdict};
use tessera_core::secret::ct_eq;
use tessera_core::token::{OpaqueToken, TokenKind};

use super::{audit_event, Client, Issued, Revocations, ServiceError, ServiceResult, TokenIssuer};
use crate::clock::SharedClock;
use crate::store::DynStore;
use crate::tenants::Directory;

/// Exchanges refresh tokens for new tokens (rotation with reuse detection).
#[derive(Clone)]
pub struct Refresher {
    store: DynStore,
    tenants: Arc<Directory>,
    tokens: TokenIssuer,
    revocations: Revocations,
    clock: SharedClock,
    grace_secs: u64,
    idle_secs: u64,
}

impl Refresher {
    /// The service over its dependencies; `grace_secs` is the reuse grace window, `idle_secs`
    /// how long a family may go unused (0: no limit).
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        tokens: TokenIssuer,
        revocations: Revocations,
        clock: SharedClock,
        grace_secs: u64,
        idle_secs: u64,
    ) -> Self {
        Self {
            store,
            tenants,
            tokens,
            revocations,
            clock,
            grace_secs,
            idle_secs,
        }
    }

    /// Presents a refresh token. `named_tenant` is the tenant the request's headers name.
    pub async fn refresh(
        &self,
        presented: &str,
        named_tenant: Option<&TenantSlug>,
        client: &Client,
    ) -> ServiceResult<Issued> {
        let token = OpaqueToken::parse(TokenKind::Refresh, presented)
            .map_err(|_| ServiceError::InvalidRefreshToken)?;
        let tenant = token.tenant().clone();
        if named_tenant.is_some_and(|named| *named != tenant) {
            return Err(ServiceError::TenantMismatch);
        }
        if !self.tenants.exists(&tenant).await? {
            return Err(ServiceError::InvalidRefreshToken);
        }
        let next = self.tokens.successor(&token);
        let (presented, successor) = (token.digest(), next.digest());
        let now = self.clock.now_secs();

        let mut tx = self.store.write(&tenant).await?;
        let stored = tx.sessions().refresh_token_for_update(&presented).await?;
        let verdict = decide(
            stored.as_ref().map(|s| Presented {
                family_active: s.session.is_active(now) && !s.user.disabled,
                issued_at: s.issued_at,
                rotated_at: s.rotated_at,
                same_successor: s
                    .successor
                    .as_deref()
                    .is_none_or(|stored| ct_eq(stored, successor.as_bytes())),
            }),
            now,
            self.grace_secs,
            self.idle_secs,
        );
        let Some(stored) = stored.filter(|_| verdict != Verdict::Invalid) else {
            return Err(ServiceError::InvalidRefreshToken);
        };
        let (mut session, user) = (stored.session, stored.user);
        let event = |name: &str| {
            audit_event(
                name,
                client,
                Some(&user.id),
                Some(&session.id),
                String::new(),
                now,
            )
        };
        match verdict {
            Verdict::Rotate => {
                tx.sessions()
                    .rotate(&presented, &successor, &session.id, now)
                    .await?;
                tx.audit().append(&event("refresh")).await?;
            }
            Verdict::GraceReplay => {
                tx.audit().append(&event("refresh_grace_replay")).await?;
            }
            Verdict::RevokeFamily => {
                tx.sessions()
                    .revoke(&session.id, "refresh_reuse", now)
                    .await?;
                tx.audit().append(&event("refresh_reuse_detected")).await?;
                tx.commit().await?;
                self.revocations.session_ended(&tenant, &session.id);
                tracing::warn!(tenant = %tenant, session = %session.id, "refresh token reuse: family revoked");
                return Err(ServiceError::InvalidRefreshToken);
            }
            Verdict::IdleTimeout => {
                tx.sessions().revoke(&session.id, "idle", now).await?;
                tx.audit().append(&event("session_idle_timeout")).await?;
                tx.commit().await?;
                self.revocations.session_ended(&tenant, &session.id);
                return Err(ServiceError::InvalidRefreshToken);
            }
            Verdict::Invalid => return Err(ServiceError::InvalidRefreshToken),
        }
        tx.commit().await?;
        session.last_used_at = now;
        self.tokens.issue(&tenant, user, &session, &next).await
    }
}
